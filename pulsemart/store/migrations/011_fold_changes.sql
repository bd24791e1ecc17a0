-- What each serving fold touched, written in the fold's transaction, so that the API's response
-- cache drops only the answers that depend on it (pulsemart/serving/cache.py); a new trending
-- list shows as a new serving.progress.trending_as_of. One row per fold that folded a batch;
-- the fold keeps the newest rows only (statements.PRUNE_FOLD_CHANGES), and a reader that fell
-- further behind starts afresh.
create table if not exists serving.fold_changes (
    to_batch   bigint primary key,  -- serving.progress.quality_batch_id after the fold
    from_batch bigint not null,     -- and before it
    products   text[] not null,     -- every product an event or order line of the fold names
    categories text[] not null,     -- lower(category) of those products, before and after
    customers  text[] not null,     -- whose profile or recent products may have changed
    sessions   text[] not null,     -- whose funnel or recent products may have changed
    catalog    boolean not null,    -- a product's description, price, stock or options changed
    folded_at  timestamptz not null default now()
);

-- The newest event time serving.trending was computed as of: the fold recomputes it when the
-- events folded since reach past it by the trending interval (pulsemart.serving.fold).
alter table serving.progress add column if not exists trending_as_of timestamptz;

-- The raw archive's ledger: one row per landed batch, written in the batch's own transaction as
-- 'pending', so a batch can never be stored without the archive owing it a copy. The archive
-- step (pulsemart.stream.archive) moves it to 'archived' (or 'failed', with the error, to be
-- retried by later ingest runs and by `pulsemart archive retry`), or to
-- 'gone' when its raw rows were deleted before they could be copied (a reset to earliest).
create table if not exists ingest.archive_log (
    batch_id     bigint      primary key references ingest.batches (batch_id) on delete cascade,
    status       text        not null default 'pending'
                             check (status in ('pending', 'archived', 'failed', 'gone')),
    attempts     integer     not null default 0,
    object_uri   text,
    records      integer,
    last_error   text,
    created_at   timestamptz not null default now(),
    updated_at   timestamptz not null default now()
);
-- What retries look for: the few rows not yet archived, oldest first.
create index if not exists archive_log_owed on ingest.archive_log (attempts, batch_id)
    where status in ('pending', 'failed');

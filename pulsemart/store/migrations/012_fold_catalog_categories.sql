-- The categories (lowered, before and after the fold) of the products whose description,
-- price, stock or options a fold changed: a search ordered by price within a category depends
-- on those, not on the counters every view moves (pulsemart/serving/cache.py).
alter table serving.fold_changes
    add column if not exists catalog_categories text[] not null default '{}';

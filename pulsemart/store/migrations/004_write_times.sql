-- now() is the transaction's start: a batch's rows and its finish would all read as the moment
-- the batch began. clock_timestamp() is the moment each row is written.
alter table raw.events alter column ingested_at set default clock_timestamp();
alter table ingest.batches alter column finished_at set default clock_timestamp();

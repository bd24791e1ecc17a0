-- The key behind the datamart's keyed hashes of customer identifiers (HMAC-SHA256).
-- It is made here, at random, inside the database, so no key lives in the repository; an
-- operator may set their own from the environment (PULSEMART_PII_KEY, see
-- pulsemart/datamart/pii.py). pgcrypto is not part of every PostgreSQL build (the embedded one
-- lacks it), so HMAC is spelt out from the core sha256(): H((K xor opad) || H((K xor ipad) || m)).

create table if not exists governance.pii_key (
    singleton   boolean primary key default true check (singleton),
    inner_pad   bytea not null,  -- the 64-byte block key xor 0x36
    outer_pad   bytea not null,  -- the 64-byte block key xor 0x5c
    set_by      text  not null,
    set_at      timestamptz not null default now()
);

create or replace function governance.set_pii_key(k bytea, who text) returns void
language plpgsql as $$
declare
    block bytea := k;
    i_pad bytea;
    o_pad bytea;
begin
    if length(block) > 64 then
        block := sha256(block);
    end if;
    block := block || decode(repeat('00', 64 - length(block)), 'hex');
    i_pad := block;
    o_pad := block;
    for i in 0..63 loop
        i_pad := set_byte(i_pad, i, get_byte(block, i) # 54);
        o_pad := set_byte(o_pad, i, get_byte(block, i) # 92);
    end loop;
    insert into governance.pii_key (inner_pad, outer_pad, set_by) values (i_pad, o_pad, who)
    on conflict (singleton) do update
        set inner_pad = excluded.inner_pad, outer_pad = excluded.outer_pad,
            set_by = excluded.set_by, set_at = now();
end;
$$;

select governance.set_pii_key(
    decode(replace(gen_random_uuid()::text || gen_random_uuid()::text, '-', ''), 'hex'),
    'random at migration'
)
where not exists (select 1 from governance.pii_key);

-- Null stays null: a guest checkout has no customer to key.
create or replace function governance.keyed_hash(v text) returns text
language sql stable parallel safe as $$
    select case when v is null then null else
        encode(sha256(k.outer_pad || sha256(k.inner_pad || convert_to(v, 'UTF8'))), 'hex') end
    from governance.pii_key k
$$;

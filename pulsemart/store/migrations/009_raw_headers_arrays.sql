-- raw.events.headers holds a jsonb array of [key, base64 value] pairs. Rows landed before
-- this migration held that array serialised inside a JSON string; unwrap them so every row
-- answers jsonb operators (headers @> '[["trace-id", ...]]', jsonb_array_elements) alike.
update raw.events
set headers = (headers #>> '{}')::jsonb
where jsonb_typeof(headers) = 'string';

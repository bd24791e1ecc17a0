{# Rows grow with the stream in quality-batch order: quality passes commit one at a time under
   an advisory lock, so "batch id above the highest already loaded" selects exactly the new rows. #}
{% macro new_quality_batches(column='quality_batch_id') -%}
    {%- if is_incremental() -%}
    {{ column }} > (select coalesce(max(quality_batch_id), 0) from {{ this }})
    {%- else -%}
        true
    {%- endif -%}
{%- endmacro %}

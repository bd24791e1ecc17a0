{# new_quality_batches() for models whose rows carry the highest quality batch among their inputs
   (an exposure and the outcomes that name it, a day's outcomes) rather than a batch of their
   own: rows of batches above the highest such batch this model has already seen. #}
{% macro newer_than_last_build(column, watermark='last_quality_batch_id') -%}
    {%- if is_incremental() -%}
    {{ column }} > (select coalesce(max({{ watermark }}), 0) from {{ this }})
    {%- else -%}
        true
    {%- endif -%}
{%- endmacro %}

{# Keyed hash (HMAC-SHA256) of a customer identifier: the key lives in governance.pii_key, made
   at random in the database or set from PULSEMART_PII_KEY; never in the repository. #}
{% macro pii_hash(column) -%}
    governance.keyed_hash({{ column }})
{%- endmacro %}

{# Fails with every row whose column does not match the POSIX regular expression `pattern`
   (nulls pass; not_null tests those). #}
{% test matches_pattern(model, column_name, pattern) %}
select {{ column_name }}
from {{ model }}
where {{ column_name }} !~ '{{ pattern }}'
{% endtest %}

{# Fails with every row for which the SQL boolean `expression` is false (null passes). #}
{% test expression_is_true(model, expression) %}
select *
from {{ model }}
where not ({{ expression }})
{% endtest %}

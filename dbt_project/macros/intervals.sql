{# 95% intervals in SQL, so each daily row carries its own. ml/experiment_stats.py computes the
   same for the experiment readout; z is the normal quantile of a two-sided 95% interval. #}

{# Wilson score interval of successes / n: unlike the normal approximation it stays inside
   [0, 1] and behaves for the small counts of an experiment's first hours. Null when n is 0. #}
{% macro wilson_low(successes, n) -%}
    {{ wilson_bound(successes, n, '-') }}
{%- endmacro %}

{% macro wilson_high(successes, n) -%}
    {{ wilson_bound(successes, n, '+') }}
{%- endmacro %}

{% macro wilson_bound(successes, n, sign) -%}
    {%- set z = 1.959963984540054 -%}
    {%- set rate -%}
        (({{ successes }})::double precision / ({{ n }}))
    {%- endset -%}
    {%- set bound -%}
        ({{ rate }} + {{ z * z }} / (2.0 * ({{ n }}))
            {{ sign }} {{ z }} * sqrt({{ rate }} * (1 - {{ rate }}) / ({{ n }})
                + {{ z * z }} / (4.0 * ({{ n }}) * ({{ n }}))))
        / (1 + {{ z * z }} / ({{ n }}))
    {%- endset -%}
    {#- The interval always holds the rate; rounding would put a bound a hair past it at 0 or 1. -#}
    {%- if sign == '-' %}
    case when ({{ n }}) > 0 then least(greatest({{ bound }}, 0), {{ rate }}) end
    {%- else %}
    case when ({{ n }}) > 0 then greatest(least({{ bound }}, 1), {{ rate }}) end
    {%- endif %}
{%- endmacro %}

{# Normal interval of a mean per unit from the sum and the sum of squares of n values (the
   sample variance, n - 1; none from a single value): sums of days add up, means do not. #}
{% macro mean_low(total, total_sq, n) -%}
    {{ mean_bound(total, total_sq, n, '-') }}
{%- endmacro %}

{% macro mean_high(total, total_sq, n) -%}
    {{ mean_bound(total, total_sq, n, '+') }}
{%- endmacro %}

{% macro mean_bound(total, total_sq, n, sign) -%}
    {%- set z = 1.959963984540054 -%}
    {%- set variance -%}
        case
            when ({{ n }}) > 1
                then greatest(
                    (({{ total_sq }})::double precision
                        - ({{ total }})::double precision * ({{ total }})::double precision / ({{ n }}))
                    / (({{ n }}) - 1),
                    0
                )
            else 0
        end
    {%- endset -%}
    case
        when ({{ n }}) > 0
            then ({{ total }})::double precision / ({{ n }}) {{ sign }} {{ z }} * sqrt({{ variance }} / ({{ n }}))
    end
{%- endmacro %}

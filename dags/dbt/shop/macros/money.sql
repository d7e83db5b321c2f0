{% macro cents_to_dollars(column, scale=2) -%}
  round({{ column }} / {{ var('currency_divisor') }}, {{ scale }})
{%- endmacro %}

{# The statuses the marts count, built the way many projects build lists in macros. #}
{% macro counted_statuses() %}
  {% set statuses = [] %}
  {% for s in ['placed', 'shipped', 'completed', 'returned'] %}
    {% do statuses.append(s) %}
  {% endfor %}
  {{ return(statuses) }}
{% endmacro %}

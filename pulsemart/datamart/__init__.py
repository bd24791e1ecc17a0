"""The datamart: runs the dbt project in `dbt_project/` against pulsemart's database."""

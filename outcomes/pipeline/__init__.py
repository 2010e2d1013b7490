"""What the Airflow tasks do, kept out of the DAG files so DAGs stay thin and parse fast."""

from outcomes.cli import app

app(prog_name="outcomes")

"""Stage 5: tables, plots and one HTML page from the results table (`page.write_report`); the
tables (`tables`) and plots (`figures`) each computed from data the run wrote."""

"""Running the refresh on a Prefect server: starting, watching and stopping its processes.

Used by the real-server test and by anyone scripting the steps of `deploy/README.md`;
the flow itself never imports this package.
"""

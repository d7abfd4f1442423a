"""The latency dashboard: session data (data.py), the FastAPI server (server.py) and its page (page.html)."""

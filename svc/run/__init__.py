"""Running the service: wiring Settings into a Service, uvicorn with a drain on SIGTERM,
and several worker processes on one port.
"""

"""A streaming, agentic chatbot for Apache Burr, served at ``/demos/streaming-chatbot``.

Kept tiny on purpose: the startup hook imports this package in every Python process.
"""

__version__ = "0.1.0"

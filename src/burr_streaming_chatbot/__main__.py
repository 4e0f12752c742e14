"""``python -m burr_streaming_chatbot``: the same as ``burr-streaming-chatbot``."""

import sys

from .cli import main

sys.exit(main())

import os

os.environ.setdefault("HF_HUB_OFFLINE", "1")  # nothing in the suite may reach a hub

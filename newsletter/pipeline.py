"""The whole flow in one readable place: fetch, rank, render, deliver.

CLI, web and scheduler call these functions, never the stages in their own order.
"""

from __future__ import annotations

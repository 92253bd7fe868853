"""Ranking: relevance × trending × freshness per subscriber, no repeats, diversity, reasons."""

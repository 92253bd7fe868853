"""Delivery: mailers (SMTP, Maildir), MIME, the send ledger's rules and the run lock."""

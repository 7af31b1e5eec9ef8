"""Updates in, durably: none lost, none handled twice.

updates/
  intake.py     polling or a webhook: each update journaled before Telegram hears it arrived
  journal.py    what becomes of each update: replayed, retried, done, or set aside
  minimal.py    what is kept of an update: what answering it needs, and nothing else
  processor.py  each update's end: its handlers run, then the journal hears how it went
"""

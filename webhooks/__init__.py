"""Merchant webhooks (Standard Webhooks 1.0): events from the ledger, signed, retried,
delivered at least once and in order per subject. Imports only ``interact.floor`` from
the application; docs/webhooks.md describes the contract."""

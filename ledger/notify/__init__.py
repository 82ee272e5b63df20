"""Notifications: events derived from the chain and the journal, told to members by signed
webhooks (from a durable outbox) and by a Server-Sent Events stream."""

"""Source connectors: each reads one kind of upstream feed and emits contract-checked events."""

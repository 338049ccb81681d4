package parcels

// The statements a processing job reads, loads and marks a batch of stored
// webhooks and updates their parcels with, for the plan tests.
const (
	OwnPendingSQL    = ownPendingSQL
	AnyPendingSQL    = anyPendingSQL
	LoadWebhooksSQL  = loadWebhooksSQL
	MarkDoneSQL      = markDoneSQL
	MarkRetrySQL     = markRetrySQL
	MarkDeadSQL      = markDeadSQL
	UpdateParcelsSQL = updateParcelsSQL
)

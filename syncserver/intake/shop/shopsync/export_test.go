package shopsync

// LockLeadsSQL is what a settle reads and locks its orders' leads with, for
// the plan test.
const LockLeadsSQL = lockLeadsSQL

// MarkWebhooksSQL and FailWebhooksSQL are what a batch's webhooks are
// marked processed or failed with, for the plan test.
const (
	MarkWebhooksSQL = markWebhooksSQL
	FailWebhooksSQL = failWebhooksSQL
)

// ShopOrdersSQL is what a settle reads its orders' digests with, for the
// plan test.
const ShopOrdersSQL = shopOrdersSQL

// InboxFlushers is how many batches an inbox commits at once.
const InboxFlushers = inboxFlushers

// Queued is how many deliveries wait for a batcher, for the tests.
func (in *Inbox) Queued() int { return in.g.Queued() }

// Closing is closed once Close is called, for the tests.
func (in *Inbox) Closing() <-chan struct{} { return in.g.Closing() }

// KickLoopEnded says the goroutine enqueueing stored webhooks' processing
// has ended (or never started).
func KickLoopEnded(s *Service) bool {
	s.kickMu.Lock()
	done := s.kickDone
	s.kickMu.Unlock()
	if done == nil {
		return true
	}
	select {
	case <-done:
		return true
	default:
		return false
	}
}

// Package turn gives one job at a time in a server instance the turn to
// work a store's backlog, and lets the jobs that arrive meanwhile leave their
// work to it instead of waiting in a worker slot.
package turn

import (
	"sync"

	"github.com/google/uuid"
)

// Turns holds the stores whose turn a job has. The zero value is ready.
type Turns struct {
	mu sync.Mutex
	// held maps a store to whether a later job asked its holder to look
	// for more work before it stops.
	held map[uuid.UUID]bool
}

// Take gives the caller the store's turn and says true; when another job
// holds it, it asks that one to look again before it stops and says false.
func (t *Turns) Take(store uuid.UUID) bool {
	t.mu.Lock()
	defer t.mu.Unlock()
	if _, ok := t.held[store]; ok {
		t.held[store] = true
		return false
	}
	if t.held == nil {
		t.held = map[uuid.UUID]bool{}
	}
	t.held[store] = false
	return true
}

// Leave ends the holder's turn and says true, unless a job asked it to look
// again: then the request is taken, the turn kept, and it says false. With
// force the turn ends whatever was asked (an error, a turn that ran long).
func (t *Turns) Leave(store uuid.UUID, force bool) bool {
	t.mu.Lock()
	defer t.mu.Unlock()
	if t.held[store] && !force {
		t.held[store] = false
		return false
	}
	delete(t.held, store)
	return true
}

package turn

import (
	"fmt"
	"runtime"
	"sync"
	"testing"
	"time"

	"github.com/google/uuid"
)

// claim is Claim without an ask, saying only whether the turn was given.
func claim(ts *Turns, store uuid.UUID) (*Turn, bool) { return ts.Claim(store, nil) }

func TestTurns(t *testing.T) {
	var ts Turns
	a, b := uuid.New(), uuid.New()
	ua, okA := claim(&ts, a)
	ub, okB := claim(&ts, b)
	if !okA || !okB {
		t.Fatal("a free store's turn was not given")
	}
	if ended, _ := ub.Next(false); !ended {
		t.Fatal("a turn nobody asked about did not end")
	}
	if _, ok := claim(&ts, a); ok {
		t.Fatal("a held turn was given twice")
	}
	if ended, _ := ua.Next(false); ended {
		t.Fatal("the holder stopped although a job asked it to look again")
	}
	if ended, _ := ua.Next(false); !ended {
		t.Fatal("the request to look again was not taken by the first Next")
	}
	ua, ok := claim(&ts, a)
	if !ok {
		t.Fatal("an ended turn was not given again")
	}
	if _, ok := claim(&ts, a); ok {
		t.Fatal("a held turn was given twice")
	}
	if ended, _ := ua.Next(true); !ended {
		t.Fatal("force did not end a turn with a request pending")
	}
	if _, ok := claim(&ts, a); !ok {
		t.Fatal("an ended turn was not given again")
	}
}

// A holder whose turn was taken over ends only its own holding: the job
// that took it over keeps the turn (Leave, which Next replaced, deleted
// whatever turn the store had).
func TestNextAfterTakeOverKeepsTheNewTurn(t *testing.T) {
	ts := Turns{Lease: time.Millisecond}
	store := uuid.New()
	old, _ := claim(&ts, store)
	time.Sleep(2 * time.Millisecond)
	taker, ok := claim(&ts, store)
	if !ok {
		t.Fatal("a turn held past its lease was not taken over")
	}
	if ended, _ := old.Next(true); !ended {
		t.Fatal("a taken-over turn's Next did not just end")
	}
	if _, ok := ts.Claim(store, nil); ok {
		t.Fatal("the old holder's Next ended the new holder's turn")
	}
	if ended, _ := taker.Next(false); ended {
		t.Fatal("the new holder did not see the request to look again")
	}
}

// Whatever the interleaving, a job that is refused the turn is never left
// behind: the holder looks again after it (or it gets the turn itself).
func TestTurnsNoLostRequest(t *testing.T) {
	var ts Turns
	store := uuid.New()
	var mu sync.Mutex
	pending, worked := 0, 0
	var wg sync.WaitGroup
	for range 64 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			mu.Lock()
			pending++
			mu.Unlock()
			u, ok := claim(&ts, store)
			if !ok {
				return
			}
			for {
				mu.Lock()
				worked += pending
				pending = 0
				mu.Unlock()
				if ended, _ := u.Next(false); ended {
					return
				}
			}
		}()
	}
	wg.Wait()
	if pending != 0 || worked != 64 {
		t.Fatalf("pending %d, worked %d of 64", pending, worked)
	}
}

// A job refused the turn hands its ask to the holder, once: handed again
// while taken it is not handed twice; once worked its job finds it so, once.
func TestAsks(t *testing.T) {
	var ts Turns
	store := uuid.New()
	item := uuid.New()
	u, ok := ts.Claim(store, nil)
	if !ok {
		t.Fatal("a free store's turn was not given")
	}
	if _, ok := ts.Claim(store, &Ask{Key: "j/2", Items: []uuid.UUID{item}}); ok {
		t.Fatal("a held turn was given twice")
	}
	ended, asks := u.Next(false)
	if ended || len(asks) != 1 || asks[0].Key != "j/2" || asks[0].Items[0] != item {
		t.Fatalf("the holder was not handed the ask: ended %v, asks %v", ended, asks)
	}
	if _, ok := ts.Claim(store, &Ask{Key: "j/2", Items: []uuid.UUID{item}}); ok {
		t.Fatal("a held turn was given twice")
	}
	if asks := u.Asked(); len(asks) != 0 {
		t.Fatalf("an ask being worked was handed again: %v", asks)
	}
	if ts.WasWorked("j/2") {
		t.Fatal("an ask not yet worked was reported worked")
	}
	u.Worked("j/2")
	if ended, _ := u.Next(false); !ended {
		t.Fatal("the turn did not end with nothing asked")
	}
	if !ts.WasWorked("j/2") || ts.WasWorked("j/2") {
		t.Fatal("a worked ask was not reported once")
	}

	// Force drops what was handed: its job comes back for it.
	u, _ = ts.Claim(store, nil)
	ts.Claim(store, &Ask{Key: "k/2", Items: []uuid.UUID{item}})
	if ended, _ := u.Next(true); !ended {
		t.Fatal("force did not end the turn")
	}
	u, ok = ts.Claim(store, nil)
	if !ok {
		t.Fatal("an ended turn was not given again")
	}
	if ended, asks := u.Next(false); !ended || len(asks) != 0 {
		t.Fatalf("a dropped ask outlived its turn: %v", asks)
	}
}

// A turn held past the lease is taken over, with what its holder was
// handed and did not work (but not the claimer's own ask); the stuck
// holder's turn has ended for it, and its Next does not end the new one's.
func TestLease(t *testing.T) {
	ts := Turns{Lease: 20 * time.Millisecond}
	store := uuid.New()
	stuck, _ := ts.Claim(store, nil)
	ts.Claim(store, &Ask{Key: "a/2", Items: []uuid.UUID{uuid.New()}})
	ts.Claim(store, &Ask{Key: "b/2", Items: []uuid.UUID{uuid.New()}})
	if _, asks := stuck.Next(false); len(asks) != 2 {
		t.Fatalf("asks %v", asks)
	}
	stuck.Worked("a/2")
	if _, ok := ts.Claim(store, &Ask{Key: "c/2", Items: []uuid.UUID{uuid.New()}}); ok {
		t.Fatal("a turn within its lease was taken over")
	}
	time.Sleep(30 * time.Millisecond)
	u, ok := ts.Claim(store, &Ask{Key: "c/2", Items: []uuid.UUID{uuid.New()}})
	if !ok {
		t.Fatal("a turn past its lease was not taken over")
	}
	if ended, _ := stuck.Next(false); !ended {
		t.Fatal("the stuck holder still holds the turn")
	}
	if _, ok := ts.Claim(store, nil); ok {
		t.Fatal("the stuck holder's Next ended the new holder's turn")
	}
	ended, asks := u.Next(false)
	if ended || len(asks) != 1 || asks[0].Key != "b/2" {
		t.Fatalf("the new holder was not handed what the stuck one left: ended %v, asks %v", ended, asks)
	}
}

// Whatever the interleaving, every job's ask is worked exactly once: by
// the holder it was handed to, or by the job itself once it has the turn.
func TestAsksWorkedOnce(t *testing.T) {
	var ts Turns
	store := uuid.New()
	const jobs = 64
	var mu sync.Mutex
	worked := map[string]int{}
	work := func(keys ...string) {
		mu.Lock()
		for _, k := range keys {
			worked[k]++
		}
		mu.Unlock()
	}
	var wg sync.WaitGroup
	for i := range jobs {
		key := fmt.Sprintf("%d/2", i)
		wg.Go(func() {
			for {
				if ts.WasWorked(key) {
					return
				}
				u, ok := ts.Claim(store, &Ask{Key: key, Items: []uuid.UUID{uuid.New()}})
				if !ok {
					runtime.Gosched() // the snooze
					continue
				}
				work(key)
				var handed []Ask
				for {
					var keys []string
					for _, a := range handed {
						keys = append(keys, a.Key)
					}
					work(keys...)
					u.Worked(keys...)
					ended, asks := u.Next(false)
					if ended {
						return
					}
					handed = asks
				}
			}
		})
	}
	wg.Wait()
	if len(worked) != jobs {
		t.Fatalf("%d of %d asks worked", len(worked), jobs)
	}
	for k, n := range worked {
		if n != 1 {
			t.Fatalf("ask %s worked %d times", k, n)
		}
	}
}

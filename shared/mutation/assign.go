package mutation

import (
	"time"

	"github.com/google/uuid"
)

// ReleaseLead gives the lead back to the pool: it is no longer assigned and
// has no lease. It needs "leads.claim"; an agent releases only a lead they
// hold. Besides the checks every mutation makes (see [Mutation]), it is
// rejected with CodeNotHolder when the lead is already in the pool.
type ReleaseLead struct {
	Lead    uuid.UUID `json:"lead_id"`
	EventID uuid.UUID `json:"event_id"`
}

func (ReleaseLead) Name() string        { return "ReleaseLead" }
func (ReleaseLead) Version() int        { return 1 }
func (m ReleaseLead) LeadID() uuid.UUID { return m.Lead }

func (m ReleaseLead) validate() error { return checkIDs(m.Lead, m.EventID) }

// Apply implements [Mutation].
func (m ReleaseLead) Apply(env Env, cur *Lead) (Result, *Rejection) {
	c, rej := begin(env, cur, m, permClaim)
	if rej != nil {
		return Result{}, rej
	}
	if c.lead.AssignedTo == uuid.Nil {
		return Result{}, reject(CodeNotHolder, "Lead is already in the pool")
	}
	c.data["agent"] = c.lead.AssignedTo.String()
	c.lead.AssignedTo, c.lead.LeaseUntil = uuid.Nil, time.Time{}
	return c.finish(m.EventID, EventRelease, "")
}

// AssignLead assigns the lead to an agent, or reassigns it, with a fresh
// lease (env.Now + env.Lease); AgentID uuid.Nil puts it back in the pool. It
// needs "leads.assign" (sellers and admins). Apply sees one lead only: that
// AgentID is a member of the store who may work on leads is checked by the
// server outside Apply. It fails only the checks every mutation makes (see
// [Mutation]).
type AssignLead struct {
	Lead    uuid.UUID `json:"lead_id"`
	EventID uuid.UUID `json:"event_id"`
	AgentID uuid.UUID `json:"agent_id"`
}

func (AssignLead) Name() string        { return "AssignLead" }
func (AssignLead) Version() int        { return 1 }
func (m AssignLead) LeadID() uuid.UUID { return m.Lead }

func (m AssignLead) validate() error { return checkIDs(m.Lead, m.EventID) }

// Apply implements [Mutation].
func (m AssignLead) Apply(env Env, cur *Lead) (Result, *Rejection) {
	c, rej := begin(env, cur, m, permAssign)
	if rej != nil {
		return Result{}, rej
	}
	if c.lead.AssignedTo != uuid.Nil {
		c.data["previous_agent"] = c.lead.AssignedTo.String()
	}
	c.lead.AssignedTo, c.lead.LeaseUntil = m.AgentID, time.Time{}
	if m.AgentID != uuid.Nil {
		c.data["agent"] = m.AgentID.String()
		c.lead.LeaseUntil = env.Now.Add(env.Lease)
	}
	return c.finish(m.EventID, EventAssign, "")
}

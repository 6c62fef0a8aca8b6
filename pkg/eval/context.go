package eval

// Context is what the engine evaluates: one user and their groups, already
// enriched with cohort memberships. It mirrors the map the reference engine
// builds from a user, but stays typed so that selecting a field costs no
// allocation. The engine never modifies a Context.
//
// Empty strings are absent, as in the reference: a condition on an empty
// Country sees null. CohortIDs is the user's cohort memberships; GroupCohortIDs
// maps group type -> group name -> memberships, and a name present with an
// empty list is different from an absent name (the former reads as an empty
// list, the latter as null).
//
// Cohorts, when set, stands for the cohort enrichment the official SDKs do
// (cohort_ids filled from the cohorts a flag targets) without doing it up
// front: memberships are looked up only when a condition reads cohort_ids,
// and often only for the condition's own values. The context then reads
// exactly as if enriched eagerly:
//
//   - context.user.cohort_ids is, when UserID is non-empty and
//     Cohorts.Referenced(UserCohorts) is non-empty, those referenced ids that
//     UserID is a member of (null when none); otherwise CohortIDs;
//   - context.groups.<type>.cohort_ids is, when the type's first group name is
//     non-empty and Cohorts.Referenced(type) reports the type, those
//     referenced ids of the type that the name is a member of (an empty list
//     when none); otherwise GroupCohortIDs.
type Context struct {
	UserID             string
	DeviceID           string
	Country            string
	Region             string
	DMA                string
	City               string
	Language           string
	Platform           string
	Version            string
	OS                 string
	DeviceManufacturer string
	DeviceBrand        string
	DeviceModel        string
	Carrier            string
	Library            string

	UserProperties  map[string]any
	Groups          map[string][]string
	GroupProperties map[string]map[string]any
	CohortIDs       []string
	GroupCohortIDs  map[string]map[string][]string
	Cohorts         Cohorts
}

// UserCohorts is the group type under which Cohorts answers for user
// cohorts (context.user.cohort_ids), whose members are user ids.
const UserCohorts = "User"

// Cohorts answers cohort membership for a Context on demand. It must be
// safe for concurrent use and give the same answers for the life of the
// contexts that hold it; the engine calls it during evaluation only.
type Cohorts interface {
	// Referenced returns the cohort ids of groupType that enrichment
	// covers, in the order they are to be listed, and whether enrichment
	// covers groupType at all (it may with no ids). The engine does not
	// modify the slice.
	Referenced(groupType string) (ids []string, ok bool)
	// Member reports whether member (a user id for UserCohorts, otherwise a
	// group name) is in cohort id of groupType. It is false for an id that
	// Referenced(groupType) does not return.
	Member(groupType, member, id string) bool
	// MemberOfAny reports whether Member is true for some of ids; it lets
	// the implementation do once per call what is common to the ids.
	MemberOfAny(groupType, member string, ids []string) bool
}

// lazyUserCohorts returns the user id and referenced user cohorts when
// context.user.cohort_ids comes from c.Cohorts.
func (c *Context) lazyUserCohorts() (string, []string, bool) {
	if c.Cohorts == nil || c.UserID == "" {
		return "", nil, false
	}
	ids, _ := c.Cohorts.Referenced(UserCohorts)
	return c.UserID, ids, len(ids) > 0
}

// lazyGroupCohorts returns the group name and referenced cohorts of the
// type when context.groups.<type>.cohort_ids comes from c.Cohorts.
func (c *Context) lazyGroupCohorts(groupType string) (string, []string, bool) {
	name, ok := c.group(groupType)
	if !ok || name == "" || c.Cohorts == nil {
		return "", nil, false
	}
	ids, ok := c.Cohorts.Referenced(groupType)
	return name, ids, ok
}

// memberships lists the ids that member is in, never nil, as eager
// enrichment stored them.
func (c *Context) memberships(groupType, member string, ids []string) []string {
	out := []string{}
	for _, id := range ids {
		if c.Cohorts.Member(groupType, member, id) {
			out = append(out, id)
		}
	}
	return out
}

// userCohorts returns context.user.cohort_ids, materialized; empty is null.
func (c *Context) userCohorts() []string {
	if member, ids, ok := c.lazyUserCohorts(); ok {
		return c.memberships(UserCohorts, member, ids)
	}
	return c.CohortIDs
}

// userFieldNames are the keys of context.user that hold plain strings, in
// the order of userField.
var userFieldNames = [...]string{
	"user_id", "device_id", "country", "region", "dma", "city", "language",
	"platform", "version", "os", "device_manufacturer", "device_brand",
	"device_model", "carrier", "library",
}

func userFieldIndex(name string) int {
	for i, n := range userFieldNames {
		if n == name {
			return i
		}
	}
	return -1
}

func (c *Context) userField(i int) string {
	switch i {
	case 0:
		return c.UserID
	case 1:
		return c.DeviceID
	case 2:
		return c.Country
	case 3:
		return c.Region
	case 4:
		return c.DMA
	case 5:
		return c.City
	case 6:
		return c.Language
	case 7:
		return c.Platform
	case 8:
		return c.Version
	case 9:
		return c.OS
	case 10:
		return c.DeviceManufacturer
	case 11:
		return c.DeviceBrand
	case 12:
		return c.DeviceModel
	case 13:
		return c.Carrier
	case 14:
		return c.Library
	}
	return ""
}

// group returns what context.groups.<type> holds: the first group name and
// whether the type is present at all (it is not when its name list is empty).
func (c *Context) group(groupType string) (name string, ok bool) {
	names := c.Groups[groupType]
	if len(names) == 0 {
		return "", false
	}
	return names[0], true
}

// groupProperties returns context.groups.<type>.group_properties.
func (c *Context) groupProperties(groupType string) (any, bool) {
	name, ok := c.group(groupType)
	if !ok {
		return nil, false
	}
	props, ok := c.GroupProperties[groupType][name]
	return props, ok
}

// groupCohorts returns context.groups.<type>.cohort_ids.
func (c *Context) groupCohorts(groupType string) ([]string, bool) {
	if member, ids, ok := c.lazyGroupCohorts(groupType); ok {
		return c.memberships(groupType, member, ids), true
	}
	name, ok := c.group(groupType)
	if !ok {
		return nil, false
	}
	ids, ok := c.GroupCohortIDs[groupType][name]
	if ok && ids == nil {
		ids = []string{}
	}
	return ids, ok
}

// asMap builds the generic form of the context, as the reference engine
// holds it. Only selectors that stop at a container (context, context.user,
// context.groups.<type>...) need it, and they are rare, so it is built on
// demand and never on the hot path.
func (c *Context) asMap() map[string]any {
	user := map[string]any{}
	for i, name := range userFieldNames {
		if v := c.userField(i); v != "" {
			user[name] = v
		}
	}
	if len(c.UserProperties) > 0 {
		user["user_properties"] = c.UserProperties
	}
	if len(c.Groups) > 0 {
		user["groups"] = c.Groups
	}
	if ids := c.userCohorts(); len(ids) > 0 {
		user["cohort_ids"] = ids
	}
	ctx := map[string]any{"user": user}
	groups := map[string]any{}
	for t := range c.Groups {
		if g := c.groupMap(t); g != nil {
			groups[t] = g
		}
	}
	if len(groups) > 0 {
		ctx["groups"] = groups
	}
	return ctx
}

func (c *Context) groupMap(groupType string) map[string]any {
	name, ok := c.group(groupType)
	if !ok {
		return nil
	}
	g := map[string]any{"group_name": name}
	if props, ok := c.groupProperties(groupType); ok {
		g["group_properties"] = props
	}
	if ids, ok := c.groupCohorts(groupType); ok {
		g["cohort_ids"] = ids
	}
	return g
}

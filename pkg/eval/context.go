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
	if len(c.CohortIDs) > 0 {
		user["cohort_ids"] = c.CohortIDs
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

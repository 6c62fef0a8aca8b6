package server

import (
	"encoding/json"
	"net/http"
	"net/url"
	"strconv"

	"github.com/flagkit/experiment/pkg/cohort"
)

// serveCohort answers GET /sdk/v1/cohort/{id}?maxCohortSize=N&lastModified=M
// as Amplitude's cohort download API does: 200 with the cohort, 204 when
// lastModified is the stored copy's, 413 when it has more than N members,
// 404 for an unknown id.
//
// Cohort requests carry the analytics keys, not a deployment key: the
// cohort is looked up in every deployment, first come first served.
func (h *Handler) serveCohort(w http.ResponseWriter, r *http.Request, _ *deployment, p []string) {
	id, err := url.PathUnescape(p[0])
	if err != nil {
		writeError(w, http.StatusBadRequest, "cohort id: bad escape")
		return
	}
	var c *cohort.Cohort
	applied := false
	for _, d := range h.deps {
		if f := d.src.Current().Flags; f != nil {
			applied = true
			if c = f.Cohorts.Get(id); c != nil {
				break
			}
		}
	}
	if !applied {
		h.current(w, h.deps[0]) // the 503 of a server with nothing yet
		return
	}
	if c == nil {
		writeError(w, http.StatusNotFound, "no such cohort")
		return
	}
	q := r.URL.Query()
	if v := q.Get("maxCohortSize"); v != "" {
		n, err := strconv.ParseInt(v, 10, 64)
		if err != nil || n < 0 {
			writeError(w, http.StatusBadRequest, "maxCohortSize: want a non-negative integer")
			return
		}
		if int64(c.Size) > n {
			writeError(w, http.StatusRequestEntityTooLarge, "cohort larger than maxCohortSize")
			return
		}
	}
	if v := q.Get("lastModified"); v != "" {
		m, err := strconv.ParseInt(v, 10, 64)
		if err != nil {
			writeError(w, http.StatusBadRequest, "lastModified: want an integer")
			return
		}
		if m == c.LastModified {
			w.WriteHeader(http.StatusNoContent)
			return
		}
	}
	writeBody(w, r, http.StatusOK, c.AppendJSON(nil))
}

// serveMemberships answers GET /sdk/v2/memberships/{groupType}/{groupName}
// (the JVM SDK's proxy mode): the ids of the stored cohorts of that group
// type listing the member ("User" for user ids).
func (h *Handler) serveMemberships(w http.ResponseWriter, r *http.Request, d *deployment, p []string) {
	st := h.current(w, d)
	if st == nil {
		return
	}
	groupType, err1 := url.PathUnescape(p[0])
	name, err2 := url.PathUnescape(p[1])
	if err1 != nil || err2 != nil {
		writeError(w, http.StatusBadRequest, "group type or name: bad escape")
		return
	}
	ids := st.Flags.Cohorts.Memberships(groupType, name, st.Flags.cohortIDs) // never nil: [] for none
	body, _ := json.Marshal(ids)                                             // strings always encode
	writeBody(w, r, http.StatusOK, body)
}

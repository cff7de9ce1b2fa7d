package decodo

import (
	"encoding/json"
	"net/http"
	"time"
)

// The async endpoints: a task is created at once and completed in the
// background; its results can be read again until it expires.

func (e *Emulator) createTask(w http.ResponseWriter, r *http.Request) {
	q, urls, ok := decode(w, r, false)
	if !ok {
		return
	}
	t := e.startTask(r, q, urls[0])
	e.mu.Lock()
	v := taskView(t)
	e.mu.Unlock()
	writeJSON(w, http.StatusOK, v)
}

func (e *Emulator) createBatch(w http.ResponseWriter, r *http.Request) {
	q, urls, ok := decode(w, r, true)
	if !ok {
		return
	}
	var tasks []map[string]any
	for _, u := range urls {
		t := e.startTask(r, q, u)
		e.mu.Lock()
		tasks = append(tasks, taskView(t))
		e.mu.Unlock()
	}
	// The batch id is a JSON number of 19 digits (clients must not read it
	// as a float64).
	w.Header().Set("Content-Type", "application/json")
	w.Write([]byte(`{"id":` + newTaskID() + `,"tasks":`))
	json.NewEncoder(w).Encode(tasks)
	w.Write([]byte(`}`))
}

func taskView(t *task) map[string]any {
	status := "pending"
	switch {
	case t.Faulted:
		status = "faulted"
	case t.Result != nil:
		status = "done"
	}
	return map[string]any{"id": t.ID, "status": status, "target": t.Params.Target, "headless": t.Params.Headless,
		"created_at": t.Created.Format(timeLayout), "updated_at": time.Now().UTC().Format(timeLayout)}
}

func (e *Emulator) startTask(r *http.Request, q *scrapeRequest, target string) *task {
	t := &task{ID: newTaskID(), Params: *q, Created: time.Now().UTC()}
	e.mu.Lock()
	e.tasks[t.ID] = t
	e.order = append(e.order, t.ID)
	for len(e.order) > maxTasks || (len(e.order) > 0 && time.Since(e.tasks[e.order[0]].Created) > taskTTL) {
		delete(e.tasks, e.order[0])
		e.order = e.order[1:]
	}
	e.mu.Unlock()
	go func() {
		bg, _ := http.NewRequest(http.MethodGet, "/", nil) // detached from the creating request
		res, err := e.fetch(bg, q, target)
		e.mu.Lock()
		defer e.mu.Unlock()
		if err != nil {
			t.Faulted = true
			return
		}
		t.Result = res
		e.billed.Add(1)
	}()
	return t
}

func (e *Emulator) lookup(w http.ResponseWriter, r *http.Request) *task {
	e.mu.Lock()
	defer e.mu.Unlock()
	t := e.tasks[r.PathValue("id")]
	if t == nil {
		writeJSON(w, http.StatusNotFound, map[string]any{"message": "Task not found"})
	}
	return t
}

func (e *Emulator) taskStatus(w http.ResponseWriter, r *http.Request) {
	if t := e.lookup(w, r); t != nil {
		e.mu.Lock()
		v := taskView(t)
		e.mu.Unlock()
		writeJSON(w, http.StatusOK, v)
	}
}

func (e *Emulator) taskResults(w http.ResponseWriter, r *http.Request) {
	t := e.lookup(w, r)
	if t == nil {
		return
	}
	e.mu.Lock()
	res, faulted := t.Result, t.Faulted
	e.mu.Unlock()
	switch {
	case faulted:
		writeJSON(w, http.StatusOK, map[string]any{"status": "failed", "status_code": 613, "message": "We were not able to scrape the target"})
	case res == nil:
		w.WriteHeader(http.StatusNoContent)
	default:
		writeJSON(w, http.StatusOK, map[string]any{"results": []*result{res}})
	}
}

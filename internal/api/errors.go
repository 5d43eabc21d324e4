package api

import (
	"context"
	"encoding/json"
	"errors"
	"net/http"

	"github.com/canaryd/canaryd/internal/alerting"
	"github.com/canaryd/canaryd/internal/api/wire"
	"github.com/canaryd/canaryd/internal/control"
	"github.com/canaryd/canaryd/internal/store"
)

// apiError is an error this package found itself (bad JSON, a bad path or
// query parameter, a failed precondition) with its status.
type apiError struct {
	status int
	field  string
	msg    string
}

func (e *apiError) Error() string {
	if e.field == "" {
		return e.msg
	}
	return e.field + ": " + e.msg
}

func badRequest(field, msg string) error {
	return &apiError{status: http.StatusBadRequest, field: field, msg: msg}
}

// status maps any error to the HTTP status and body the client gets. It is
// the one place where errors become statuses:
//
//	*apiError              its own status
//	*control.FieldError    400, naming the field
//	store.ErrInvalid       400
//	store.ErrNotFound      404
//	control.ErrIllegal     409, saying what is legal
//	alerting.ErrReadOnly   409, saying to edit the config file
//	alerting.ErrNoKey      409, naming alerts.secret_key
//	store.ErrConflict      409
//	control.ErrStale       412 (If-Match no longer current)
//	*http.MaxBytesError    413
//	anything else          500, logged, with no detail to the client
func status(err error) (int, wire.Error) {
	var (
		ae    *apiError
		fe    *control.FieldError
		ie    *control.IllegalError
		se    *control.StaleError
		mbe   *http.MaxBytesError
		typed *json.UnmarshalTypeError
	)
	switch {
	case errors.As(err, &ae):
		return ae.status, wire.Error{Error: ae.msg, Field: ae.field}
	case errors.As(err, &fe):
		return http.StatusBadRequest, wire.Error{Error: fe.Error(), Field: fe.Field}
	case errors.As(err, &se):
		return http.StatusPreconditionFailed, wire.Error{Error: se.Error(), Field: "If-Match"}
	case errors.As(err, &ie):
		return http.StatusConflict, wire.Error{Error: ie.Error(), Legal: ie.Legal}
	case errors.As(err, &mbe):
		return http.StatusRequestEntityTooLarge, wire.Error{Error: "request body is larger than " + itoa(mbe.Limit) + " bytes"}
	case errors.As(err, &typed):
		return http.StatusBadRequest, wire.Error{Error: err.Error(), Field: typed.Field}
	case errors.Is(err, alerting.ErrReadOnly):
		return http.StatusConflict, wire.Error{Error: "the channel is declared in the config file and is read-only: edit alerts.channels there and reload canaryd",
			Legal: "change channels added at run time only"}
	case errors.Is(err, alerting.ErrNoKey):
		return http.StatusConflict, wire.Error{Error: "the server has no alerts.secret_key, so it cannot store channel secrets: " +
			"set alerts.secret_key in its config (32 bytes, base64 or hex, e.g. ${CANARYD_SECRET_KEY}) and reload, or declare the channel in the config file"}
	case errors.Is(err, store.ErrInvalid):
		return http.StatusBadRequest, wire.Error{Error: err.Error()}
	case errors.Is(err, store.ErrNotFound):
		return http.StatusNotFound, wire.Error{Error: err.Error()}
	case errors.Is(err, store.ErrConflict):
		return http.StatusConflict, wire.Error{Error: err.Error() + " (someone changed it at the same time: read it again and retry)"}
	case errors.Is(err, context.Canceled), errors.Is(err, context.DeadlineExceeded):
		return http.StatusServiceUnavailable, wire.Error{Error: "request cancelled or timed out before it finished: " + err.Error()}
	}
	return http.StatusInternalServerError, wire.Error{Error: "internal error (details are in the server log)"}
}

func errorBody(err error) []byte {
	_, body := status(err)
	b, _ := json.Marshal(body)
	return b
}

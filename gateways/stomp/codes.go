// Copyright 2026 The Cairn Authors
// SPDX-License-Identifier: Apache-2.0

package stomp

// Code is the code header of an ERROR frame: stable, for clients to match
// on. The message beside it is for people and may change.
type Code string

// The codes, each with what it means.
const (
	CodeMalformedFrame        Code = "malformed-frame"        // a frame that does not parse: no colon in a header line, a bad escape, a bad content-length, no NUL after the body
	CodeUnknownCommand        Code = "unknown-command"        // a command STOMP does not have
	CodeFrameTooLarge         Code = "frame-too-large"        // a body over --max-body, or larger than the whole --read-memory-mb budget
	CodeTooManyHeaders        Code = "too-many-headers"       // more headers than --max-headers
	CodeHeaderTooLarge        Code = "header-too-large"       // a header or command line over --max-header-bytes
	CodeMissingHeader         Code = "missing-header"         // a header the command needs (destination, id, transaction, ...)
	CodeBadHeader             Code = "bad-header"             // a header value the command cannot take, a NUL byte or invalid UTF-8 in a header
	CodeBadDestination        Code = "bad-destination"        // a destination that is not /queue/, /topic/ or a temporary one, or holds a control character
	CodeNotConnected          Code = "not-connected"          // a frame before CONNECT
	CodeAlreadyConnected      Code = "already-connected"      // a second CONNECT
	CodeBadVersion            Code = "bad-version"            // none of accept-version's versions is 1.0, 1.1 or 1.2
	CodeUnknownAck            Code = "unknown-ack"            // an ACK or NACK of a message not delivered and unacknowledged on this connection
	CodeUnknownSubscription   Code = "unknown-subscription"   // an UNSUBSCRIBE of no subscription, or of no durable subscription by that name
	CodeDuplicateSubscription Code = "duplicate-subscription" // a SUBSCRIBE with an id in use on this connection
	CodeUnknownTransaction    Code = "unknown-transaction"    // a frame naming no open transaction
	CodeDuplicateTransaction  Code = "duplicate-transaction"  // a BEGIN of a transaction already open
	CodeConnectTimeout        Code = "connect-timeout"        // no CONNECT within --connect-timeout
	CodeHeartbeatTimeout      Code = "heartbeat-timeout"      // nothing received for twice the client's heart-beat interval
	CodeFrameTimeout          Code = "frame-timeout"          // a frame not received whole within --frame-timeout
	CodeIdleTimeout           Code = "idle-timeout"           // nothing received for --idle-timeout from a client without heart-beats
	CodeTooManyConnections    Code = "too-many-connections"   // over --max-connections, --max-unconnected or --max-connections-per-ip
	CodeJournalFailure        Code = "journal-failure"        // the message store failed; the server log has the detail
	CodeStoreUnavailable      Code = "store-unavailable"      // the message store is out of disk space: persistent messages are refused until it has room
	CodeStoreFull             Code = "store-full"             // --store-limit-mb reached, with --store-full-error
	CodeTooLarge              Code = "too-large"              // an operation that must be stored atomically needs more than one journal append holds
	CodeShuttingDown          Code = "shutting-down"          // the server is stopping
	CodeDurableInUse          Code = "durable-in-use"         // a durable subscription another connection holds
	CodeBadSelector           Code = "bad-selector"           // a selector that does not parse
	CodeUpstreamUnavailable   Code = "upstream-unavailable"   // a gateway could not reach its upstream broker in time
	CodeBadCredentials        Code = "bad-credentials"        // CONNECT's login and passcode are not a user's (or no login, where one is needed)
	CodeClientIDInUse         Code = "client-id-in-use"       // a CONNECT with a client-id another connection has
	CodeAccessDenied          Code = "access-denied"          // the user may not do that with that destination (the users file's authorization)
	CodeClosedByAdmin         Code = "closed-by-admin"        // an operator closed the connection (the admin API or console)
	CodeInternalError         Code = "internal-error"         // a fault of the server's; the server log has the detail
)

// Error is an error a Broker returns to be answered with a code of its
// own (the gateway tier passes on its upstream's ERROR so).
type Error struct {
	Code    Code
	Message string
}

func (e *Error) Error() string { return e.Message }

// Codes lists every code, in the order above.
var Codes = []Code{
	CodeMalformedFrame,
	CodeUnknownCommand,
	CodeFrameTooLarge,
	CodeTooManyHeaders,
	CodeHeaderTooLarge,
	CodeMissingHeader,
	CodeBadHeader,
	CodeBadDestination,
	CodeNotConnected,
	CodeAlreadyConnected,
	CodeBadVersion,
	CodeUnknownAck,
	CodeUnknownSubscription,
	CodeDuplicateSubscription,
	CodeUnknownTransaction,
	CodeDuplicateTransaction,
	CodeConnectTimeout,
	CodeHeartbeatTimeout,
	CodeFrameTimeout,
	CodeIdleTimeout,
	CodeTooManyConnections,
	CodeJournalFailure,
	CodeStoreUnavailable,
	CodeStoreFull,
	CodeTooLarge,
	CodeShuttingDown,
	CodeDurableInUse,
	CodeBadSelector,
	CodeUpstreamUnavailable,
	CodeBadCredentials,
	CodeClientIDInUse,
	CodeAccessDenied,
	CodeClosedByAdmin,
	CodeInternalError,
}

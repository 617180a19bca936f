
ä
google/protobuf/any.protogoogle.protobuf"6
Any
type_url (	RtypeUrl
value (RvalueBv
com.google.protobufBAnyProtoPZ,google.golang.org/protobuf/types/known/anypb¢GPBªGoogle.Protobuf.WellKnownTypesbproto3
Ö
shim_v2/ttrpc/ttrpc.protottrpcgoogle/protobuf/any.proto"2
KeyValue
key (	Rkey
value (	Rvalue"¥
Request
service (	Rservice
method (	Rmethod
payload (Rpayload!
timeout_nano (RtimeoutNano+
metadata (2.ttrpc.KeyValueRmetadata"f
Status
code (Rcode
message (	Rmessage.
details (2.google.protobuf.AnyRdetails"K
Response%
status (2.ttrpc.StatusRstatus
payload (Rpayloadbproto3
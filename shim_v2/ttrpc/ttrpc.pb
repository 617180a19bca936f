
¥
shim_v2/ttrpc/ttrpc.protottrpc"2
KeyValue
key (	Rkey
value (	Rvalue"¥
Request
service (	Rservice
method (	Rmethod
payload (Rpayload!
timeout_nano (RtimeoutNano+
metadata (2.ttrpc.KeyValueRmetadata"P
Status
code (Rcode
message (	Rmessage
details (Rdetails"K
Response%
status (2.ttrpc.StatusRstatus
payload (Rpayloadbproto3
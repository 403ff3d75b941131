package verdictlog

// BindMessage is the body of the config message Open sends, for tests that
// capture raw NFLOG messages.
func BindMessage(group uint16) []byte {
	return configMessage(group, cfgCmd(nfulnlCfgCmdBind), cfgMode(copyRange))
}

// MsgTypeConfig and MsgTypePacket are the netlink message types of NFLOG.
const (
	MsgTypeConfig = nfnlSubsysULOG<<8 | nfulnlMsgConfig
	MsgTypePacket = msgTypePacket
)

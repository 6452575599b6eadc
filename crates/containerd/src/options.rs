//! Shim options as containerd's protobuf messages (not in containerd-client, so declared
//! here with their field numbers).

use prost::Message;
use prost_types::Any;

/// `containerd.runc.v1.Options`.
#[derive(Clone, PartialEq, Message)]
pub struct RuncOptionsProto {
    #[prost(bool, tag = "1")]
    pub no_pivot_root: bool,
    #[prost(bool, tag = "2")]
    pub no_new_keyring: bool,
    #[prost(string, tag = "3")]
    pub shim_cgroup: String,
    #[prost(uint32, tag = "4")]
    pub io_uid: u32,
    #[prost(uint32, tag = "5")]
    pub io_gid: u32,
    #[prost(string, tag = "6")]
    pub binary_name: String,
    #[prost(string, tag = "7")]
    pub root: String,
    #[prost(string, tag = "8")]
    pub criu_path: String,
    #[prost(bool, tag = "9")]
    pub systemd_cgroup: bool,
    #[prost(string, tag = "10")]
    pub criu_image_path: String,
    #[prost(string, tag = "11")]
    pub criu_work_path: String,
}

/// `runtimeoptions.v1.Options`.
#[derive(Clone, PartialEq, Message)]
pub struct GenericOptionsProto {
    #[prost(string, tag = "1")]
    pub type_url: String,
    #[prost(string, tag = "2")]
    pub config_path: String,
}

/// The runtime a containerd container record names: the shim and its options.
#[derive(Debug, Clone, PartialEq)]
pub struct RuntimeSpec {
    pub shim: String,
    pub options: Option<Any>,
}

impl RuncOptionsProto {
    /// As containerd 1.6 expects it: the bare proto name as type URL.
    pub fn to_any(&self) -> Any {
        Any {
            type_url: "containerd.runc.v1.Options".to_string(),
            value: self.encode_to_vec(),
        }
    }
}

impl GenericOptionsProto {
    pub fn to_any(&self) -> Any {
        Any {
            type_url: "runtimeoptions.v1.Options".to_string(),
            value: self.encode_to_vec(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn binary_name_is_field_six() {
        let o = RuncOptionsProto {
            binary_name: "runc".into(),
            ..Default::default()
        };
        let any = o.to_any();
        assert_eq!(any.type_url, "containerd.runc.v1.Options");
        // tag 6, wire type 2 (length-delimited) = 0x32, then length 4.
        assert_eq!(any.value, [0x32, 4, b'r', b'u', b'n', b'c']);
    }
}

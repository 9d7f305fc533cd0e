//! What Version reports: fixed for the life of the daemon, handed over when it starts.

use skerry_proto::machine::v1 as pb;

/// The versions and names Version answers with.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct VersionInfo {
    /// The daemon's own version.
    pub daemon_version: String,
    /// The release booted now, empty when unknown.
    pub release_version: String,
    /// The board definition's name.
    pub board: String,
    /// The slot booted now, empty when unknown.
    pub booted_slot: String,
}

impl VersionInfo {
    /// The Version answer, with the API package this server speaks.
    pub fn response(&self) -> pb::VersionResponse {
        pb::VersionResponse {
            daemon_version: self.daemon_version.clone(),
            api_version: skerry_proto::MACHINE_API_PACKAGE.to_owned(),
            release_version: self.release_version.clone(),
            board: self.board.clone(),
            booted_slot: self.booted_slot.clone(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_answer_names_the_api_package() {
        let info = VersionInfo {
            daemon_version: "0.1.0".into(),
            release_version: "2026.12.1".into(),
            board: "rpi4".into(),
            booted_slot: "B".into(),
        };
        let answer = info.response();
        assert_eq!(answer.api_version, "skerry.machine.v1");
        assert_eq!(answer.daemon_version, "0.1.0");
        assert_eq!(answer.release_version, "2026.12.1");
        assert_eq!(answer.board, "rpi4");
        assert_eq!(answer.booted_slot, "B");
    }
}

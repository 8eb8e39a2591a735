//! bt-encoding (bencode) as oxenc writes it, and the frames built on it (network §2.3, §4.16, §6.5, §7.5).

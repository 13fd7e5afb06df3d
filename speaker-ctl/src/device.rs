//! Talking to speaker.ko through /dev/speaker.

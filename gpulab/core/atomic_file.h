// Crash-safe file writes: write a temporary sibling, fsync, rename over the
// target, fsync the folder. A reader sees the old file or the new one, never a
// torn one.
#pragma once

#include <string>

namespace gpulab::core {

// Replaces `path` with `bytes` atomically. Throws Error(kIo) naming the path.
void write_file_atomic(const std::string& path, const std::string& bytes);

// Reads a whole file. Throws Error(kNotFound) or Error(kIo) naming the path.
std::string read_file(const std::string& path);

// Appends one line (a '\n' is added) and flushes it to disk.
void append_line_durable(const std::string& path, const std::string& line);

// Creates `dir` and its parents; throws Error(kIo) if it cannot be created or
// written to (checked by creating and removing a probe file).
void ensure_writable_dir(const std::string& dir);

}  // namespace gpulab::core

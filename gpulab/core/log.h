// Lines for a person watching a command (what data was found, where a model
// went), apart from the progress table. Library code takes a Log and never
// prints itself, so a quiet run, a data-parallel rank other than 0, a lab or
// the server decide where the lines go.
#pragma once

#include <cstdio>
#include <functional>
#include <string>

namespace gpulab::core {

class Log {
 public:
  // Silent.
  Log() = default;
  // Each line to `out`, flushed.
  explicit Log(std::FILE* out)
      : sink_([out](const std::string& text) {
          std::fprintf(out, "%s\n", text.c_str());
          std::fflush(out);
        }) {}
  // Each line to `sink`.
  explicit Log(std::function<void(const std::string&)> sink) : sink_(std::move(sink)) {}

  // One line; a trailing newline (a rendered table's) is dropped.
  // Thread-safe when the sink is.
  void line(const std::string& text) const {
    if (!sink_) return;
    if (!text.empty() && text.back() == '\n') {
      sink_(text.substr(0, text.size() - 1));
    } else {
      sink_(text);
    }
  }
  bool enabled() const { return static_cast<bool>(sink_); }

 private:
  std::function<void(const std::string&)> sink_;
};

}  // namespace gpulab::core

#include "tools/cli/pipe_mode.h"

#include <condition_variable>
#include <deque>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <thread>
#include <utility>

#include "tools/cli/command_parser.h"

namespace tally::cli {

namespace {

// One input line: its request and, once known, its reply.
struct Slot {
  proto::Request request;
  std::optional<std::string> text;  // a reply decided locally
  bool error = false;               // with `text`
  proto::Response response;
  bool done = false;
};

// The lines in flight, oldest first. The reader appends; replies complete
// slots in any order; the writer prints the head once it is done.
class Window {
 public:
  explicit Window(size_t capacity) : capacity_(capacity) {}

  // Blocks while the window is full.
  Slot* Push(std::unique_ptr<Slot> slot) {
    std::unique_lock lock(mu_);
    room_.wait(lock, [&] { return slots_.size() < capacity_; });
    slots_.push_back(std::move(slot));
    Slot* raw = slots_.back().get();
    if (raw->done) ready_.notify_one();
    return raw;
  }

  void Complete(Slot* slot, proto::Response response) {
    std::lock_guard lock(mu_);
    slot->response = std::move(response);
    slot->done = true;
    ready_.notify_one();
  }

  void Close() {
    std::lock_guard lock(mu_);
    closed_ = true;
    ready_.notify_one();
  }

  // The next finished slot in order, or nullptr once closed and drained.
  // `*more` says whether further slots are queued (to batch flushes).
  std::unique_ptr<Slot> Pop(bool* more) {
    std::unique_lock lock(mu_);
    ready_.wait(lock, [&] {
      return (!slots_.empty() && slots_.front()->done) ||
             (closed_ && slots_.empty());
    });
    if (slots_.empty()) return nullptr;
    std::unique_ptr<Slot> slot = std::move(slots_.front());
    slots_.pop_front();
    *more = !slots_.empty() && slots_.front()->done;
    room_.notify_one();
    return slot;
  }

 private:
  const size_t capacity_;
  std::mutex mu_;
  std::condition_variable room_;
  std::condition_variable ready_;
  std::deque<std::unique_ptr<Slot>> slots_;
  bool closed_ = false;
};

std::string HelpLine() {
  std::string names;
  for (const CommandDoc& doc : CommandDocs()) {
    if (!names.empty()) names += ' ';
    names += doc.name;
  }
  return "commands: " + names;
}

}  // namespace

PipeStats RunPipe(std::istream& in, std::ostream& out,
                  const PipeOptions& options, const AsyncExecutor& execute) {
  FormatOptions format = options.format;
  format.one_line = true;
  format.chart = false;
  Window window(options.window == 0 ? 1 : options.window);
  PipeStats stats;
  // std::cin is tied to std::cout: reading would flush `out` from this
  // thread while the writer thread uses it.
  std::ostream* const tied = in.tie(nullptr);

  std::thread writer([&] {
    bool more = false;
    while (std::unique_ptr<Slot> slot = window.Pop(&more)) {
      bool error = slot->error;
      std::string text;
      if (slot->text) {
        text = std::move(*slot->text);
      } else {
        error = IsError(slot->response);
        text = FormatResponse(slot->request, slot->response, format);
      }
      out << text << '\n';
      if (!more) out.flush();
      ++stats.replies;
      if (error) ++stats.errors;
    }
    out.flush();
  });

  std::string line;
  while (std::getline(in, line)) {
    auto slot = std::make_unique<Slot>();
    Result<Command> command = ParseLine(line);
    bool quit = false;
    if (!command.ok()) {
      slot->text = FormatSyntaxError(command.status().message(), format);
      slot->error = true;
    } else if (command->kind == CommandKind::kHelp) {
      slot->text = HelpLine();
    } else if (command->kind != CommandKind::kRequest) {
      slot->text = "OK";  // QUIT / CLEAR
      quit = command->kind == CommandKind::kQuit;
    } else {
      slot->request = std::move(command->request);
    }
    slot->done = slot->text.has_value();
    const bool send = !slot->done;
    Slot* raw = window.Push(std::move(slot));
    if (send) {
      // The slot stays alive until the writer pops it, which needs done.
      execute(raw->request, [&window, raw](proto::Response response) {
        window.Complete(raw, std::move(response));
      });
    }
    if (quit) break;
  }
  window.Close();
  writer.join();
  in.tie(tied);
  return stats;
}

}  // namespace tally::cli

#include "tools/cli/monitor_mode.h"

#include <cctype>
#include <future>
#include <memory>
#include <string>

namespace tally::cli {

bool IsMonitor(const proto::Request& request) {
  const auto* admin = std::get_if<proto::AdminRequest>(&request.body);
  if (admin == nullptr || admin->args.empty()) return false;
  std::string name = admin->args[0];
  for (char& c : name) c = static_cast<char>(std::toupper(c));
  return name == "MONITOR";
}

int RunMonitor(Client& client, const proto::Request& request,
               const FormatOptions& format, std::ostream& out) {
  auto done = std::make_shared<std::promise<int>>();
  std::future<int> exit_code = done->get_future();
  const FormatOptions one_line{.json = format.json, .one_line = true};
  client.Stream(
      request, [&out, &request, one_line, done](Result<proto::Response> frame) {
        if (!frame.ok()) {
          out << FormatResponse(request, proto::Response::Error(frame.status()),
                                one_line)
              << std::endl;
          done->set_value(1);
          return false;
        }
        const auto* admin = std::get_if<proto::AdminResult>(&frame->body);
        if (!one_line.json && admin != nullptr &&
            admin->reply.kind == proto::AdminReply::Kind::kText) {
          out << admin->reply.text << std::endl;  // an event, printed as is
        } else {
          out << FormatResponse(request, *frame, one_line) << std::endl;
        }
        if (IsError(*frame)) {
          done->set_value(1);
          return false;
        }
        return true;
      });
  return exit_code.get();
}

}  // namespace tally::cli

#include "sabot/transport/flight_status.h"

#include <memory>
#include <string>

#include <arrow/flight/types.h>

#include "sabot/common/error_detail.h"
#include "sabot/common/quoted_input.h"

namespace sabot {

namespace flight = arrow::flight;

arrow::Status ToFlightStatus(const arrow::Status& status) {
  if (status.ok()) return status;
  std::string message = SanitizeMessage(status.message(), kMaxFlightMessageBytes);
  if (flight::FlightStatusDetail::UnwrapStatus(status) != nullptr) {
    return arrow::Status(status.code(), std::move(message), status.detail());
  }
  auto with_flight_code = [&](flight::FlightStatusCode code) {
    return arrow::Status(status.code(), std::move(message),
                         std::make_shared<flight::FlightStatusDetail>(code));
  };
  switch (status.code()) {
    case arrow::StatusCode::Invalid:
    case arrow::StatusCode::KeyError:
    case arrow::StatusCode::AlreadyExists:
    case arrow::StatusCode::NotImplemented:
    case arrow::StatusCode::Cancelled:
      // Arrow's Flight server maps these to INVALID_ARGUMENT, NOT_FOUND, ALREADY_EXISTS,
      // UNIMPLEMENTED and CANCELLED itself.
      return arrow::Status(status.code(), std::move(message), status.detail());
    case arrow::StatusCode::IndexError:
    case arrow::StatusCode::TypeError:
    case arrow::StatusCode::CapacityError:
    case arrow::StatusCode::SerializationError:
      return arrow::Status(arrow::StatusCode::Invalid, std::move(message), status.detail());
    case arrow::StatusCode::IOError: {
      const ShuffleErrorDetail* detail = ShuffleErrorDetail::FromStatus(status);
      return with_flight_code(detail != nullptr && detail->context().retryable
                                  ? flight::FlightStatusCode::Unavailable
                                  : flight::FlightStatusCode::Internal);
    }
    case arrow::StatusCode::OutOfMemory:
      return with_flight_code(flight::FlightStatusCode::Unavailable);
    default:
      return with_flight_code(flight::FlightStatusCode::Internal);
  }
}

}  // namespace sabot

// The C++ SDK against a running ETP (`make sdk-smoke`; ETP_URL, default the gateway of
// `make run`): register, log in, create an API key, then with the key create a project, an
// experiment, a run and a sensor; send a telemetry batch with the sensor's token and read the
// history back. Exits 1 with the failed step on any surprise.
#include <cstdlib>
#include <iostream>
#include <memory>
#include <random>
#include <sstream>
#include <stdexcept>
#include <string>
#include <vector>

#include "etp/ApiClient.h"
#include "etp/ApiConfiguration.h"
#include "etp/ApiException.h"
#include "etp/Object.h"
#include "etp/api/AccountsApi.h"
#include "etp/api/ApiKeysApi.h"
#include "etp/api/ExperimentsApi.h"
#include "etp/api/ProjectsApi.h"
#include "etp/api/SensorsApi.h"
#include "etp/api/TelemetryApi.h"

namespace {

using namespace etp::api;
using namespace etp::model;

const char* const LANGUAGE = "c++";

struct StepFailed : std::runtime_error {
    using std::runtime_error::runtime_error;
};

std::shared_ptr<ApiClient> client_for(const std::string& base_url, const std::string& token) {
    auto config = std::make_shared<ApiConfiguration>();
    config->setBaseUrl(base_url);
    config->setUserAgent("etp-sdk-smoke/0.1 (c++)");
    if (!token.empty()) {
        config->getDefaultHeaders()["Authorization"] = "Bearer " + token;
    }
    return std::make_shared<ApiClient>(config);
}

// Waits for one call (the API object must outlive it: its continuation uses it); an error answer (the SDK throws ApiException with the problem+json body)
// or no answer at all becomes StepFailed naming the step.
template <typename Call>
auto step(const std::string& name, Call call) -> decltype(call().get()) {
    try {
        return call().get();
    } catch (const ApiException& error) {
        std::string body;
        if (auto content = error.getContent()) {
            std::ostringstream text;
            text << content->rdbuf();
            body = text.str();
        }
        throw StepFailed(name + ": HTTP " + std::to_string(error.error_code().value()) + " " + body);
    } catch (const std::exception& error) {
        throw StepFailed(name + ": " + error.what());
    }
}

void check(const std::string& name, bool condition, const std::string& detail) {
    if (!condition) {
        throw StepFailed(name + ": " + detail);
    }
}

std::string random_suffix() {
    std::random_device device;
    std::ostringstream text;
    text << std::hex << device() << device();
    return text.str().substr(0, 12);
}

void run_smoke(const std::string& base_url) {
    const AccountsApi accounts(client_for(base_url, ""));
    const std::string username = "sdk-cpp-" + random_suffix();
    const std::string password = "sdk smoke password";

    auto registration = std::make_shared<RegisterIn>();
    registration->setUsername(username);
    registration->setEmail(username + "@example.org");
    registration->setPassword(password);
    step("register", [&] { return accounts.registerUser(registration); });

    auto credentials = std::make_shared<LoginIn>();
    credentials->setUsername(username);
    credentials->setPassword(password);
    const auto tokens = step("login", [&] { return accounts.login(credentials); });
    const ApiKeysApi api_keys(client_for(base_url, tokens->getAccessToken()));

    auto key_request = std::make_shared<ApiKeyCreate>();
    key_request->setName("sdk smoke");
    const auto api_key =
        step("create API key", [&] { return api_keys.createApiKey(key_request, boost::none); });
    check("API key format", api_key->getKey().rfind("etpk_", 0) == 0, api_key->getPreview());
    const auto etp = client_for(base_url, api_key->getKey());
    const ProjectsApi projects(etp);
    const ExperimentsApi experiments(etp);
    const SensorsApi sensors(etp);
    const TelemetryApi telemetry(etp);

    auto project_request = std::make_shared<ProjectCreate>();
    project_request->setName(std::string("SDK smoke ") + LANGUAGE);
    const auto project = step("create project", [&] {
        return projects.createProject(project_request, boost::none);
    });

    auto experiment_request = std::make_shared<ExperimentCreate>();
    experiment_request->setProjectId(project->getId());
    experiment_request->setName("Wind tunnel");
    const auto experiment = step("create experiment", [&] {
        return experiments.createExperiment(experiment_request, boost::none);
    });

    auto run_request = std::make_shared<RunCreate>();
    run_request->setName("run 1");
    const auto run = step("create run", [&] {
        return experiments.createRun(experiment->getId(), run_request, boost::none);
    });
    check("run belongs to the experiment", run->getExperimentId() == experiment->getId(),
          run->getExperimentId());

    auto kind = std::make_shared<ConversionKind>();
    kind->setValue(ConversionKind::eConversionKind::LINEAR);
    auto payload = std::make_shared<Object>();
    payload->setValue("a", web::json::value::number(2));
    payload->setValue("b", web::json::value::number(1));
    auto profile = std::make_shared<ConversionProfileCreate>();
    profile->setVersion("v1");
    profile->setKind(kind);
    profile->setPayload(payload);
    auto sensor_request = std::make_shared<SensorCreate>();
    sensor_request->setProjectId(project->getId());
    sensor_request->setName("thermocouple");
    sensor_request->setType("thermocouple");
    sensor_request->setInputUnit("mV");
    sensor_request->setDisplayUnit("K");
    sensor_request->setConversionProfile(profile);
    const auto sensor = step("create sensor", [&] {
        return sensors.createSensor(sensor_request, boost::none);
    });
    check("sensor token", sensor->getToken().rfind("etps_", 0) == 0, sensor->getTokenPreview());

    // After the sensor's profile took effect (now), so every reading gets a physical value.
    const auto now = utility::datetime::utc_now();
    const auto start = now - now.to_interval() % utility::datetime::from_seconds(1);
    const auto at = [&](std::size_t i) { return start + utility::datetime::from_seconds(1 + i); };
    const std::vector<double> raw_values{1.5, 2.5, 4};
    std::vector<std::shared_ptr<Reading>> readings;
    for (std::size_t i = 0; i < raw_values.size(); ++i) {
        auto reading = std::make_shared<Reading>();
        reading->setTimestamp(at(i));
        reading->setRawValue(raw_values[i]);
        readings.push_back(reading);
    }
    auto batch = std::make_shared<TelemetryBatch>();
    batch->setSensorId(sensor->getId());
    batch->setBatchId("sdk-smoke-1");
    batch->setReadings(readings);
    const TelemetryApi device(client_for(base_url, sensor->getToken()));
    const auto accepted = step("send telemetry", [&] {
        return device.ingestTelemetry(batch);
    });
    check("batch accepted whole", accepted->getAccepted() == static_cast<int>(readings.size()),
          std::to_string(accepted->getAccepted()));

    const auto history = step("read telemetry history", [&] {
        return telemetry.listTelemetry(std::vector<utility::string_t>{sensor->getId()},
                                               boost::none, boost::none, boost::none, boost::none,
                                               boost::none, boost::none, boost::none, boost::none);
    });
    const auto items = history->getItems();
    check("history size", items.size() == raw_values.size(), std::to_string(items.size()));
    for (std::size_t i = 0; i < items.size(); ++i) {
        const auto& item = items[i];
        const std::string where = "reading " + std::to_string(i);
        check(where + " raw value", item->getRawValue() == raw_values[i],
              std::to_string(item->getRawValue()));
        check(where + " physical value",
              item->physicalValueIsSet() && item->getPhysicalValue() == 2 * raw_values[i] + 1,
              std::to_string(item->getPhysicalValue()));
        check(where + " timestamp",
              item->getTimestamp().to_interval() == at(i).to_interval(),
              item->getTimestamp().to_string(utility::datetime::ISO_8601));
    }
    std::cout << "sdk smoke (" << LANGUAGE << "): OK against " << base_url << ": user " << username
              << ", run " << run->getId() << ", " << items.size() << " readings read back"
              << std::endl;
}

}  // namespace

int main() {
    const char* url = std::getenv("ETP_URL");
    const std::string base_url = url != nullptr && *url != '\0' ? url : "http://127.0.0.1:8000";
    try {
        run_smoke(base_url);
    } catch (const std::exception& error) {
        std::cerr << "sdk smoke (" << LANGUAGE << ") FAILED: " << error.what() << std::endl;
        return 1;
    }
    return 0;
}

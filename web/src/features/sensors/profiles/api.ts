import { keepPreviousData, useMutation, useQuery, useQueryClient } from "@tanstack/react-query";

import { api, call, type Schemas } from "../../../lib/api";
import { sensorKeys } from "../api";
import type { Conversion } from "./draft";

export type Profile = Schemas["ConversionProfile"];
export type PublishedProfile = Schemas["PublishedConversionProfile"];
export type Backfill = Schemas["Backfill"];

export const profileKeys = {
  list: (sensorId: string) => ["sensors", "one", sensorId, "profiles"] as const,
};

const path = (sensorId: string) => ({ path: { sensor_id: sensorId } });

export function useProfiles(sensorId: string) {
  return useQuery({
    queryKey: profileKeys.list(sensorId),
    queryFn: () => call(api.GET("/api/v1/sensors/{sensor_id}/conversion-profiles", { params: { ...path(sensorId), query: { limit: 500 } } })),
  });
}

/** The physical values of sample raw values under a profile not created yet (null while the
 * form is incomplete). */
export function usePreview(sensorId: string, conversion: Conversion | null, rawValues: readonly number[]) {
  return useQuery({
    queryKey: ["sensors", "one", sensorId, "preview", conversion, rawValues],
    queryFn: () =>
      call(
        api.POST("/api/v1/sensors/{sensor_id}/conversion-profiles:preview", {
          params: path(sensorId),
          body: { ...conversion!, raw_values: [...rawValues] },
        }),
      ),
    enabled: conversion !== null && rawValues.length > 0,
    placeholderData: keepPreviousData,
    meta: { silent: true },
  });
}

export type ProfileDraft = Conversion & {
  version: string;
  description: string;
  /** Publish at once, schedule from an instant (ISO), publish from a past instant (ISO) and
   * convert the stored readings since then again, or keep as a draft. */
  start: { publish: true } | { scheduleAt: string } | { recomputeFrom: string } | null;
};

function useProfileChange<T, P extends Profile = Profile>(sensorId: string, change: (value: T) => Promise<P>) {
  const queryClient = useQueryClient();
  return useMutation({
    mutationFn: change,
    onSettled: () => {
      void queryClient.invalidateQueries({ queryKey: profileKeys.list(sensorId) });
      void queryClient.invalidateQueries({ queryKey: sensorKeys.one(sensorId) });
    },
  });
}

const publish = (sensorId: string, profileId: string) =>
  call(api.POST("/api/v1/sensors/{sensor_id}/conversion-profiles/{profile_id}/publish", { params: { path: { sensor_id: sensorId, profile_id: profileId } }, body: {} }));

const schedule = (sensorId: string, profileId: string, validFrom: string) =>
  call(
    api.POST("/api/v1/sensors/{sensor_id}/conversion-profiles/{profile_id}/schedule", {
      params: { path: { sensor_id: sensorId, profile_id: profileId } },
      body: { valid_from: validFrom },
    }),
  );

/** Publishes from a past instant; the answer names the backfill that converts the stored
 * readings since then again. */
const publishRecomputing = (sensorId: string, profileId: string, validFrom: string) =>
  call(
    api.POST("/api/v1/sensors/{sensor_id}/conversion-profiles/{profile_id}/publish", {
      params: { path: { sensor_id: sensorId, profile_id: profileId }, query: { backfill: true } },
      body: { valid_from: validFrom },
    }),
  );

/** Creates the draft, then publishes or schedules it when asked. */
export function useCreateProfile(sensorId: string) {
  return useProfileChange(sensorId, async ({ start, ...body }: ProfileDraft): Promise<Profile | PublishedProfile> => {
    const draft = await call(api.POST("/api/v1/sensors/{sensor_id}/conversion-profiles", { params: path(sensorId), body }));
    if (start === null) return draft;
    if ("recomputeFrom" in start) return publishRecomputing(sensorId, draft.id, start.recomputeFrom);
    return "publish" in start ? publish(sensorId, draft.id) : schedule(sensorId, draft.id, start.scheduleAt);
  });
}

/** A backfill's progress, asked again every second while it runs. */
export function useBackfill(backfillId: string) {
  return useQuery({
    queryKey: ["backfills", backfillId],
    queryFn: () => call(api.GET("/api/v1/backfills/{backfill_id}", { params: { path: { backfill_id: backfillId } } })),
    refetchInterval: (query) => (query.state.data?.status === "running" ? 1000 : false),
  });
}

export type ProfileAction = { action: "publish"; profileId: string } | { action: "schedule"; profileId: string; validFrom: string } | { action: "deprecate"; profileId: string };

export function useProfileAction(sensorId: string) {
  return useProfileChange(sensorId, (change: ProfileAction) => {
    if (change.action === "publish") return publish(sensorId, change.profileId);
    if (change.action === "schedule") return schedule(sensorId, change.profileId, change.validFrom);
    return call(
      api.POST("/api/v1/sensors/{sensor_id}/conversion-profiles/{profile_id}/deprecate", {
        params: { path: { sensor_id: sensorId, profile_id: change.profileId } },
        body: {},
      }),
    );
  });
}

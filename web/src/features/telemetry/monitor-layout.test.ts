import { describe, expect, it } from "vitest";

import { formatLayout, joinPanel, movePanel, parseLayout, setLayer, splitSensor } from "./monitor-layout";

describe("the monitor's layout", () => {
  it("reads the URL's panels, drops unknown and repeated sensors, and adds the unplaced ones", () => {
    const panels = parseLayout("a+x+b~raw,a,c", ["a", "b", "c", "d"]);
    expect(panels).toEqual([
      { sensorIds: ["a", "b"], layer: "raw" },
      { sensorIds: ["c"], layer: "physical" },
      { sensorIds: ["d"], layer: "physical" },
    ]);
    expect(formatLayout(panels)).toBe("a+b~raw,c,d");
    expect(parseLayout(null, ["a"])).toEqual([{ sensorIds: ["a"], layer: "physical" }]);
  });

  it("moves a panel and keeps the others in order", () => {
    const panels = parseLayout("a,b,c", ["a", "b", "c"]);
    expect(formatLayout(movePanel(panels, 0, 2))).toBe("b,c,a");
    expect(formatLayout(movePanel(panels, 2, 0))).toBe("c,a,b");
    expect(formatLayout(movePanel(panels, 1, 9))).toBe("a,b,c");
  });

  it("joins a sensor to another panel, dropping its emptied one, and splits it out again", () => {
    const panels = parseLayout("a,b~raw,c", ["a", "b", "c"]);
    const joined = joinPanel(panels, "a", 1);
    expect(formatLayout(joined)).toBe("b+a~raw,c");
    expect(formatLayout(splitSensor(joined, "b"))).toBe("a~raw,b~raw,c");
    expect(formatLayout(splitSensor(panels, "c"))).toBe("a,b~raw,c");
  });

  it("switches one panel's layer", () => {
    expect(formatLayout(setLayer(parseLayout("a,b", ["a", "b"]), 1, "raw"))).toBe("a,b~raw");
  });
});

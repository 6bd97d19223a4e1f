// Colours of the monitor's sensors, told apart on one panel and readable on white (Okabe-Ito,
// then Tableau's, for colour-blind readers first).
const PALETTE = ["#0072b2", "#d55e00", "#009e73", "#cc79a7", "#e69f00", "#56b4e9", "#4e79a7", "#e15759", "#76b7b2", "#59a14f"];

export function sensorColor(index: number): string {
  return PALETTE[index % PALETTE.length] as string;
}
